FROM alpine

COPY --fro=x a b
