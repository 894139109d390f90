FROM alpine

BUILDIT now
