"""The local web app (``styleforge serve``): styles, training jobs, restyling and dreaming."""
