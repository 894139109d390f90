FROM alpine
RUN --mount=type=bind,mode=0700 true
