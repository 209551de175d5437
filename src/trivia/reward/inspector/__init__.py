"""The reward inspector: what the policy wrote, what was asked, what was answered, the score.

    record.py    what is kept of a scored request (pure)
    recorder.py  keeping it off the response path, bounded
    store.py     Redis: the last N requests, compressed, with a TTL
    sanitize.py  a model's table HTML made safe to show (allow-list, lxml)
    views.py     group spreads and cell diffs for the pages (pure)
    session.py   sign-in with the gateway's token, HttpOnly cookie
    pages.py     jinja2 templates and the pages' security headers

The routes are in `trivia.reward.routes.inspect`.
"""
