"""gunicorn settings read from this directory by default (`gunicorn imaging_advisor.wsgi`).

Only the hooks that keep usage counts and warm the caches: each worker writes its counts on a
timer (so an idle worker's counts are not held forever) and when it exits, and loads and renders
the latest releases as soon as it starts (decisions/warmup.py; /readyz says when that is done).
Everything else stays on the command line or in GUNICORN_CMD_ARGS.
"""


def post_worker_init(worker):
    from decisions import usage, warmup

    usage.start_flush_timer()
    warmup.start()


def worker_exit(server, worker):
    from decisions import usage

    usage.flush_at_exit()
