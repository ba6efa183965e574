"""What clinicians meet: the wizard and recommendation pages, their links, the feedback form,
usage counts, the fast path for cached pages and the warm-up that fills it."""
