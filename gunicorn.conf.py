"""gunicorn settings read from this directory by default (`gunicorn imaging_advisor.wsgi`).

Only the hooks that keep usage counts: each worker writes its counts on a timer (so an idle
worker's counts are not held forever) and when it exits. Everything else stays on the command
line or in GUNICORN_CMD_ARGS.
"""


def post_worker_init(worker):
    from decisions import usage

    usage.start_flush_timer()


def worker_exit(server, worker):
    from decisions import usage

    usage.flush_at_exit()
