"""The two training paths: :mod:`.fit` (``model.fit``) and :mod:`.tape` (a GradientTape loop).

Both take the same :class:`~fitvstape.data.Dataset`, :class:`~fitvstape.data.BatchPlan`,
initial :class:`~fitvstape.model.Weights` and :class:`~fitvstape.config.TrainingConfig`, and
return a :class:`~fitvstape.trainers.common.PathRun`.
"""
