FROM alpine
RUN apk add --no-cache \
      curl \
# a comment inside the continuation is dropped

      jq
RUN ["sh", "-c", "echo exec"]
RUN [ "not", json ]
RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000 \
    --mount=type=bind,from=builder,source=/src,target=/src,rw \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=secret,id=token,env=TOKEN,required \
    --mount=type=ssh \
    --network=none --security=insecure pip install .
RUN <<EOF
echo hello
EOF
RUN <<-'SCRIPT' bash
	echo "$HOME not expanded"
	SCRIPT
RUN python3 <<PY1 && sh <<"PY2"
print(1)
PY1
echo 2
PY2
