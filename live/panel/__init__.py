"""The control panel: a small aiohttp web app beside a running day (or over a journal).

``live.panel.server.PanelServer`` runs it on its own thread; pages are server-rendered
templates updated live over server-sent events (``live.panel.events``)."""
