"""docker-py's network API against berthd (DOCKER_HOST points at it)."""
import docker

c = docker.from_env(version="1.41")
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.234.0.0/24", gateway="10.234.0.1")])
net = c.networks.create("pynet", driver="bridge", ipam=ipam, labels={"from": "py"}, check_duplicate=True)
try:
    net.reload()
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.234.0.0/24", net.attrs
    assert net.attrs["Labels"] == {"from": "py"}, net.attrs
    assert [n.name for n in c.networks.list(names=["pynet"])] == ["pynet"]
    assert "pynet" in [n.name for n in c.networks.list(filters={"label": "from=py"})]

    server = c.containers.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], detach=True, name="pyweb", network="pynet")
    client = c.containers.run("busybox", ["sleep", "60"], detach=True, name="pyclient")
    try:
        net.connect(client, aliases=["pyalias"], ipv4_address="10.234.0.99")
        client.reload()
        ep = client.attrs["NetworkSettings"]["Networks"]["pynet"]
        assert ep["IPAddress"] == "10.234.0.99", ep
        assert "pyalias" in ep["Aliases"], ep
        assert ep["Gateway"] == "10.234.0.1", ep
        net.reload()
        assert {x.name for x in net.containers} == {"pyweb", "pyclient"}, net.containers
        code, out = client.exec_run(["wget", "-q", "-O-", "http://pyweb/hostname"])
        assert code == 0 and out.decode().strip() == server.id[:12], (code, out)
        net.disconnect(client)
        client.reload()
        assert "pynet" not in client.attrs["NetworkSettings"]["Networks"]
    finally:
        server.remove(force=True)
        client.remove(force=True)
    # Ports through the SDK's shapes.
    web = c.containers.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], detach=True, ports={"80/tcp": ("127.0.0.1", None)})
    try:
        web.reload()
        binding = web.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1" and int(binding["HostPort"]) > 0, binding
        assert web.ports["80/tcp"][0]["HostPort"] == binding["HostPort"]
    finally:
        web.remove(force=True)
    # network_disabled: a loopback of its own, on no network, the mode kept; it can
    # still be connected later; publishing a port with it is refused.
    nd = c.containers.create("busybox", ["sh", "-c", "ip -o link | cut -d: -f2"], network_disabled=True, network="pynet")
    try:
        assert nd.attrs["Config"]["NetworkDisabled"] is True and nd.attrs["HostConfig"]["NetworkMode"] == "pynet", nd.attrs
        assert nd.attrs["NetworkSettings"]["Networks"] == {}, nd.attrs["NetworkSettings"]
        nd.start()
        assert nd.wait()["StatusCode"] == 0
        assert nd.logs().decode().split() == ["lo"], nd.logs()
        net.connect(nd)
        nd.reload()
        assert list(nd.attrs["NetworkSettings"]["Networks"]) == ["pynet"], nd.attrs["NetworkSettings"]
    finally:
        nd.remove(force=True)
    try:
        c.containers.create("busybox", "true", network_disabled=True, ports={"80/tcp": None})
        raise AssertionError("a port published with network_disabled was accepted")
    except docker.errors.APIError as e:
        assert e.status_code == 400 and "NetworkDisabled" in str(e), e
    # A create that says it is not disabled, as compose 1.29 does, shows nothing of it.
    plain = c.api.create_container("busybox", "true", networking_config=None, host_config=c.api.create_host_config())
    try:
        assert "NetworkDisabled" not in c.api.inspect_container(plain["Id"])["Config"]
    finally:
        c.api.remove_container(plain["Id"])
finally:
    net.remove()
print("ok")
