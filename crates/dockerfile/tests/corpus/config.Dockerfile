FROM busybox
CMD ["nginx", "-g", "daemon off;"]
CMD echo shell form
CMD [ "unterminated
ENTRYPOINT ["/entry.sh"]
entrypoint exec top -b
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
LABEL org.opencontainers.image.title="My App" version=1.0 "quoted key"=v
LABEL legacy some value here
EXPOSE 80/tcp 443 $PORT
ENV A=1 B="two words" C=three\ words
ENV LEGACY value with spaces
VOLUME ["/data", "/logs"]
VOLUME /var/a /var/b
USER app:staff
WORKDIR /srv/$APP
ARG ONE TWO=2
ONBUILD RUN echo triggered
ONBUILD COPY --chown=a:b . /src
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1
HEALTHCHECK CMD ["/bin/check", "--quick"]
HEALTHCHECK NONE
