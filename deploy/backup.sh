#!/bin/sh
# Usage: backup.sh DIRECTORY   (DATABASE_URL from the environment, e.g. /etc/imaging-advisor/env)
# Writes DIRECTORY/imaging-advisor-YYYY-MM-DDTHHMMSS.dump (pg_dump custom format, restorable with
# pg_restore) and keeps the newest 30. pg_dump takes a consistent snapshot; the app keeps running.
set -eu
directory=$1
mkdir -p "$directory"
file="$directory/imaging-advisor-$(date -u +%Y-%m-%dT%H%M%S).dump"
pg_dump --format=custom --no-owner --no-privileges --file="$file.part" "$DATABASE_URL"
mv "$file.part" "$file"
ls -1t "$directory"/imaging-advisor-*.dump | tail -n +31 | xargs -r rm --
echo "$file"
