"""gunicorn settings read from this directory by default (`gunicorn imaging_advisor.wsgi`).

Threaded workers, the access log's format, and the hooks that keep usage counts and warm the
caches: each worker writes its counts on a timer (so an idle worker's counts are not held forever)
and when it exits, and loads and renders the latest releases as soon as it starts
(decisions/clinician/warmup.py; /readyz says when that is done).
Everything else stays on the command line or in GUNICORN_CMD_ARGS.
"""

import os

# Threaded workers: a request stuck on a frozen database holds one thread, not the whole worker,
# so clinician pages, the API and /healthz (served from memory) go on in the other threads; and
# decisions/web/db_gate.py keeps at most DB_BOUND_CONCURRENCY threads for requests that need the
# database. Threads rather than a separate pool of workers: the loaded releases and rendered
# pages are shared by the threads of a process, and one server needs no routing by path in front.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))

# The access log (when one is asked for, e.g. --access-logfile -) records the path without the
# query string, and no Referer: the wizard's answers live in the URL (`?pregnant=yes`), and
# clinical answers must not land in logs. gunicorn's default "%(r)s" is the whole request line,
# and "%(f)s" the referring page's URL with its answers. %(U)s is the path alone; %(L)s the
# request's duration in seconds.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'


def post_worker_init(worker):
    from decisions.clinician import usage, warmup

    usage.start_flush_timer()
    warmup.start()


def worker_exit(server, worker):
    from decisions.clinician import usage

    usage.flush_at_exit()
