"""The local web app (``styleforge serve``): styles, training jobs, restyling and dreaming.

Layer: under ``cli`` only, beside ``demo`` (neither imports the other); may import ``taste``,
``train``, ``metrics``, ``video``, ``infer`` and the bottom modules. Only ``cli`` (``serve``)
imports it.

- :mod:`.store`: what it remembers (SQLite records beside the files); :mod:`.auth`: the login.
- :mod:`.worker`: the background thread running queued jobs (training, refines) one at a time.
- :mod:`.actions`: ``App``, every button of the page as a plain method; :mod:`.tune` and
  :mod:`.dream` hold the Tune and Dream tabs' actions.
- :mod:`.ui`: ``build_ui`` (the Gradio page, one module per tab in :mod:`.tabs`) and ``serve``.
"""
