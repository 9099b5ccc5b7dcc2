"""Inference, separate from training code: the trained stylizer and sampler as objects built
from their model files (:mod:`.stylizer`, :mod:`.sampler`, :mod:`.model_file`), applying a
stylizer to photos with any backend (:mod:`.apply`; overlapping tiles in :mod:`.tiling`), ONNX
export and torch-free running (:mod:`.onnx_trace`, :mod:`.onnx_runtime`), and
optimisation-based style transfer (:mod:`.transfer`)."""
