"""Training the two models, on one loop and one job shell.

Layer: above ``infer``, ``metrics`` and ``video``; may import them (the model file, the
figures a job records, the stability term) and everything below. ``taste`` and the front
ends build on it.

- :mod:`~styleforge.train.loop`: the GAN loop (resume, NaN rollback, EMA, torchrun, stop requests)
- :mod:`~styleforge.train.job`: the job shell (run folder, logs, previews, the model file)
- :mod:`~styleforge.train.stylizer`, :mod:`~styleforge.train.sampler`: each model's D and G
  steps, its loop and its job; :mod:`~styleforge.train.refine` fine-tunes a stylizer
- :mod:`~styleforge.train.config`: both training configs, their presets and builders
- :mod:`~styleforge.train.data`: image pools, random crops, Gram targets
- :mod:`~styleforge.train.checkpoint`: checkpoint files
- :mod:`~styleforge.train.augment`: DiffAugment and the adaptive augmentation probability
"""
