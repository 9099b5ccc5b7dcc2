"""Inference, separate from training code: the restyle layer.

The trained stylizer and sampler as objects built from their model files (:mod:`.stylizer`,
:mod:`.sampler`, :mod:`.model_file`; the header, its taste entries included, read and written
without torch in :mod:`.header`), the knobs of a restyle (:mod:`.settings`), the one restyle
service (:mod:`.restyle`), applying a stylizer to photos with any backend (:mod:`.apply`;
overlapping tiles in :mod:`.tiling`), ONNX export and torch-free running (:mod:`.onnx_trace`,
:mod:`.onnx_runtime`), and optimisation-based style transfer (:mod:`.transfer`).

Layer: above ``nets``; may import ``nets``, ``features``, ``losses``, ``outputs``,
``collection``, ``images``, ``runtime``, ``distributed``, ``fileio``, ``errors`` and
``version``. Never ``taste``, ``train`` or a front end: a model's stored taste is read here
from its header (:func:`~styleforge.infer.header.read_taste`)."""
