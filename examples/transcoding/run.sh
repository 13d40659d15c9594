#!/usr/bin/env bash
# The transcoding example end to end: the gRPC app, the sidecar in front of it, curl speaking JSON (see README.md).
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (50051).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-50051}"
cd "$ROOT"

node examples/transcoding/server.mjs "$APP_PORT" 2>>"$LOGDIR/apps.log" &
PIDS+=("$!")
sidecar "$ROOT/examples/transcoding/sidecar.yaml" "$ADMIN_PORT"

run 'curl -si http://127.0.0.1:$INBOUND_PORT/v1/shelves/1/books/2'
expect '^HTTP/1.1 200' 'a GET with a path template reaches GetBook'
expect '"pages":"412"' 'int64 as a string'
expect '"genre":"FICTION"' 'enum by name'
expect '"published":"1965-07-25T15:06:40Z' 'Timestamp in RFC 3339'

run 'curl -s "http://127.0.0.1:$INBOUND_PORT/v1/shelves/1/books?genre=HISTORY"'
expect '^\[\{"name":"shelves/1/books/1","title":"The Histories"' 'query parameter to a field; response_body sends the list'

run 'curl -s -X POST -d '"'"'{"title":"New","pages":12,"genre":"FICTION"}'"'"' http://127.0.0.1:$INBOUND_PORT/v1/shelves/2/books'
expect '"name":"shelves/2/books/3"' 'body "book" plus the parent from the path'

run 'curl -sN -H "accept: application/x-ndjson" http://127.0.0.1:$INBOUND_PORT/v1/shelves/1/books:watch'
expect '^\{"name":"shelves/1/books/1"' 'server streaming as NDJSON, one line per message'

run 'curl -si http://127.0.0.1:$INBOUND_PORT/v1/shelves/9/books/9'
expect '^HTTP/1.1 404' 'NOT_FOUND is 404'
expect '"code":5,"message":"no book shelves/9/books/9"' 'a JSON error body'

run 'curl -si -X POST -d '"'"'{"title":"x","colour":"red"}'"'"' http://127.0.0.1:$INBOUND_PORT/v1/shelves/2/books'
expect '^HTTP/1.1 400' 'an unknown field is refused'
expect 'book.colour: unknown field' 'naming the field'
done_ok
