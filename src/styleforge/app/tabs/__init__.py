"""The web page's tabs, one module each: the layout, then the wiring to the app's actions.

Each tab is a class whose constructor lays its components out (inside the page's ``gr.Blocks``)
and whose ``wire`` connects them to the app's actions; :func:`styleforge.app.ui.build_ui` lays
out every tab first, then wires them, since a tab's events update lists shown in other tabs.
Importing these modules imports Gradio: :mod:`styleforge.app.ui` does so only when it builds.

Layer: the top of ``app``, under :mod:`styleforge.app.ui` only; may import the app's actions
and what they return (``app.actions``, ``app.store``, ...) and the layers below ``app``.
"""
