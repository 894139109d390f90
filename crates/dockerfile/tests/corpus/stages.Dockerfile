# syntax=docker/dockerfile:1.7
# check=skip=StageNameCasing
ARG BASE=alpine:3.20
ARG VERSION TAG=latest
# a plain comment ends the directive block
# escape=`

FROM --platform=$BUILDPLATFORM ${BASE} AS Builder
maintainer Jane <jane@example.com>
run echo built > /out

from scratch
COPY --from=builder /out /out

FROM builder as final
WORKDIR /app
