FROM debian AS base
COPY --from=base --chown=app:app --chmod=0644 --link --parents --exclude=*.md --exclude=tmp a.txt b/ /dst/
COPY ["with space.txt", "/dst dir/"]
COPY <<conf.ini <<-"RAW" /etc/app/
name=$NAME
conf.ini
	raw $NAME
	RAW
ADD --chown=1000:1000 --chmod=755 --checksum=sha256:abc --keep-git-dir=true --link --exclude=.git --unpack=false https://example.com/x.tar.gz /opt/
ADD src.tar /
