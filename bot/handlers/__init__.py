"""Intent handlers and flow steps; the table that routes to them is ``bot.dialog.engine``."""
