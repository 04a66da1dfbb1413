"""The Mini App editor: a page Telegram opens from the `Edit` button under a result, where its sender taps faces to
show or cover them and draws over faces the detector missed; the front serves the page and its API
(`bot.miniapp.server`), and paints the choice through the chooser's own path (`bot.handlers.choose.repaint`)."""
