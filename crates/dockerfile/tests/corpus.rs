//! Typed parse results for the Dockerfiles in `tests/corpus/`, and the
//! messages and lines of the rejected ones in `tests/corpus/negative/`.

use berth_dockerfile::*;

fn corpus(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_ok(name: &str) -> Dockerfile {
    parse_stages(&corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn kv(k: &str, v: &str, no_delim: bool) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
        no_delim,
    }
}

fn lr(start: usize, end: usize) -> LineRange {
    LineRange { start, end }
}

#[test]
fn stages_directives_and_meta_args() {
    let df = parse_ok("stages.Dockerfile");
    assert_eq!(df.directives.syntax(), Some("docker/dockerfile:1.7"));
    assert_eq!(df.directives.check(), Some("skip=StageNameCasing"));
    assert_eq!(
        df.directives.get("escape"),
        None,
        "escape after a comment is not a directive"
    );
    assert_eq!(df.escape_token, '\\');
    assert_eq!(
        df.meta_args,
        vec![
            ArgDef {
                key: "BASE".into(),
                value: Some("alpine:3.20".into())
            },
            ArgDef {
                key: "VERSION".into(),
                value: None
            },
            ArgDef {
                key: "TAG".into(),
                value: Some("latest".into())
            },
        ]
    );
    assert_eq!(df.stages.len(), 3);
    let b = &df.stages[0];
    assert_eq!(b.name.as_deref(), Some("builder"));
    assert_eq!(b.base, "${BASE}");
    assert_eq!(b.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(b.line, lr(8, 8));
    assert_eq!(
        b.instructions,
        vec![
            (
                Instruction::Maintainer("Jane <jane@example.com>".into()),
                lr(9, 9)
            ),
            (
                Instruction::Run(Run {
                    cmd: CommandLine::shell("echo built > /out"),
                    network: "default".into(),
                    security: "sandbox".into(),
                    ..Default::default()
                }),
                lr(10, 10)
            ),
        ]
    );
    assert_eq!(
        (df.stages[1].name.as_deref(), df.stages[1].base.as_str()),
        (None, "scratch")
    );
    match &df.stages[1].instructions[0].0 {
        Instruction::Copy(c) => assert_eq!(
            (c.from.as_str(), c.sources.clone(), c.dest.as_str()),
            ("builder", s(&["/out"]), "/out")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(df.stages[2].name.as_deref(), Some("final"));
    assert_eq!(df.stages[2].base, "builder");
    assert_eq!(df.stage_index("FINAL"), Some(2));
    // FROM is expanded with the meta args.
    let env = EnvList::from_slice(&["BASE=alpine:3.20", "BUILDPLATFORM=linux/amd64"]);
    let from = Instruction::From {
        base: b.base.clone(),
        name: b.name.clone(),
        platform: b.platform.clone(),
    };
    assert_eq!(
        expand_instruction(&from, &env).unwrap(),
        Instruction::From {
            base: "alpine:3.20".into(),
            name: Some("builder".into()),
            platform: Some("linux/amd64".into())
        }
    );
}

#[test]
fn run_forms_mounts_and_heredocs() {
    let df = parse_ok("run.Dockerfile");
    let ins = &df.stages[0].instructions;
    let run = |i: usize| match &ins[i].0 {
        Instruction::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    // Continuation: comment and empty lines dropped, indentation kept.
    assert_eq!(
        run(0).cmd,
        CommandLine::shell("apk add --no-cache       curl       jq")
    );
    assert_eq!(ins[0].1, lr(2, 6));
    assert_eq!(run(1).cmd, CommandLine::exec(["sh", "-c", "echo exec"]));
    assert_eq!(run(2).cmd, CommandLine::shell("[ \"not\", json ]"));

    let r = run(3);
    assert_eq!(ins[3].1, lr(9, 14));
    assert_eq!(r.cmd, CommandLine::shell("pip install ."));
    assert_eq!(
        (r.network.as_str(), r.security.as_str()),
        ("none", "insecure")
    );
    assert_eq!(r.flags_used, s(&["mount", "network", "security"]));
    assert_eq!(r.mounts.len(), 5);
    let m = &r.mounts;
    assert_eq!(
        m[0],
        Mount {
            typ: MountType::Cache,
            target: "/root/.cache".into(),
            cache_id: "pip".into(),
            cache_sharing: Some(ShareMode::Locked),
            mode: Some(0o755),
            uid: Some(1000),
            ..Default::default()
        }
    );
    assert_eq!(
        (
            m[1].typ,
            m[1].from.as_str(),
            m[1].source.as_str(),
            m[1].read_only
        ),
        (MountType::Bind, "builder", "/src", false)
    );
    assert_eq!(
        (m[2].typ, m[2].size_limit, m[2].read_only),
        (MountType::Tmpfs, 64 << 20, false)
    );
    assert_eq!(
        (
            m[3].typ,
            m[3].cache_id.as_str(),
            m[3].env.as_deref(),
            m[3].required,
            m[3].read_only
        ),
        (MountType::Secret, "token", Some("TOKEN"), true, true)
    );
    assert_eq!(m[4].typ, MountType::Ssh);

    let h = run(4);
    assert_eq!(h.cmd, CommandLine::shell("<<EOF"));
    assert_eq!(
        h.files,
        vec![InlineFile {
            name: "EOF".into(),
            data: "echo hello\n".into(),
            chomp: false
        }]
    );
    assert_eq!(ins[4].1, lr(15, 17));
    let h = run(5);
    assert_eq!(h.cmd, CommandLine::shell("<<-'SCRIPT' bash"));
    assert_eq!(
        h.files,
        vec![InlineFile {
            name: "SCRIPT".into(),
            data: "\techo \"$HOME not expanded\"\n".into(),
            chomp: true
        }]
    );
    let h = run(6);
    assert_eq!(
        h.files
            .iter()
            .map(|f| (f.name.as_str(), f.data.as_str()))
            .collect::<Vec<_>>(),
        vec![("PY1", "print(1)\n"), ("PY2", "echo 2\n")]
    );
    assert_eq!(ins[6].1, lr(21, 25));

    // Heredoc attributes at the node level.
    let tree = parse(&corpus("run.Dockerfile")).unwrap();
    let docs = &tree.ast.children[6].heredocs;
    assert!(!docs[0].expand && docs[0].chomp);
    let docs = &tree.ast.children[7].heredocs;
    assert!(docs[0].expand && !docs[1].expand);
}

#[test]
fn copy_and_add_flags() {
    let df = parse_ok("copy_add.Dockerfile");
    let ins = &df.stages[0].instructions;
    let Instruction::Copy(c) = &ins[0].0 else {
        panic!()
    };
    assert_eq!(
        *c,
        Copy {
            sources: s(&["a.txt", "b/"]),
            contents: vec![],
            dest: "/dst/".into(),
            from: "base".into(),
            chown: "app:app".into(),
            chmod: "0644".into(),
            link: true,
            parents: true,
            excludes: s(&["*.md", "tmp"]),
        }
    );
    let Instruction::Copy(c) = &ins[1].0 else {
        panic!()
    };
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (s(&["with space.txt"]), "/dst dir/")
    );
    let Instruction::Copy(c) = &ins[2].0 else {
        panic!()
    };
    assert_eq!(c.dest, "/etc/app/");
    assert!(c.sources.is_empty());
    assert_eq!(
        c.contents,
        vec![
            SourceContent {
                path: "conf.ini".into(),
                data: "name=$NAME\n".into(),
                expand: true
            },
            SourceContent {
                path: "RAW".into(),
                data: "raw $NAME\n".into(),
                expand: false
            },
        ]
    );
    assert_eq!(ins[2].1, lr(4, 8));
    let env = EnvList::from_slice(&["NAME=berth"]);
    let Instruction::Copy(e) = expand_instruction(&ins[2].0, &env).unwrap() else {
        panic!()
    };
    assert_eq!(
        (e.contents[0].data.as_str(), e.contents[1].data.as_str()),
        ("name=berth\n", "raw $NAME\n")
    );
    let Instruction::Add(a) = &ins[3].0 else {
        panic!()
    };
    assert_eq!(
        *a,
        Add {
            sources: s(&["https://example.com/x.tar.gz"]),
            contents: vec![],
            dest: "/opt/".into(),
            chown: "1000:1000".into(),
            chmod: "755".into(),
            link: true,
            keep_git_dir: Some(true),
            checksum: "sha256:abc".into(),
            unpack: Some(false),
            excludes: s(&[".git"]),
        }
    );
    let Instruction::Add(a) = &ins[4].0 else {
        panic!()
    };
    assert_eq!((a.keep_git_dir, a.unpack, a.link), (None, None, false));
}

#[test]
fn config_instructions() {
    let df = parse_ok("config.Dockerfile");
    let got: Vec<Instruction> = df.stages[0]
        .instructions
        .iter()
        .map(|(i, _)| i.clone())
        .collect();
    let want = vec![
        Instruction::Cmd(CommandLine::exec(["nginx", "-g", "daemon off;"])),
        Instruction::Cmd(CommandLine::shell("echo shell form")),
        Instruction::Cmd(CommandLine::shell("[ \"unterminated")),
        Instruction::Entrypoint(CommandLine::exec(["/entry.sh"])),
        Instruction::Entrypoint(CommandLine::shell("exec top -b")),
        Instruction::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"])),
        Instruction::Label(vec![
            kv("org.opencontainers.image.title", "\"My App\"", false),
            kv("version", "1.0", false),
            kv("\"quoted key\"", "v", false),
        ]),
        Instruction::Label(vec![kv("legacy", "some value here", true)]),
        Instruction::Expose(s(&["$PORT", "443", "80/tcp"])),
        Instruction::Env(vec![
            kv("A", "1", false),
            kv("B", "\"two words\"", false),
            kv("C", "three\\ words", false),
        ]),
        Instruction::Env(vec![kv("LEGACY", "value with spaces", true)]),
        Instruction::Volume(s(&["/data", "/logs"])),
        Instruction::Volume(s(&["/var/a", "/var/b"])),
        Instruction::User("app:staff".into()),
        Instruction::Workdir("/srv/$APP".into()),
        Instruction::Arg(vec![
            ArgDef {
                key: "ONE".into(),
                value: None,
            },
            ArgDef {
                key: "TWO".into(),
                value: Some("2".into()),
            },
        ]),
        Instruction::Onbuild {
            expression: "RUN echo triggered".into(),
        },
        Instruction::Onbuild {
            expression: "COPY --chown=a:b . /src".into(),
        },
        Instruction::StopSignal("SIGTERM".into()),
        Instruction::Healthcheck(Healthcheck::Check {
            test: s(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
            interval: std::time::Duration::from_secs(30),
            timeout: std::time::Duration::from_secs(5),
            start_period: std::time::Duration::from_secs(60),
            start_interval: std::time::Duration::from_secs(2),
            retries: 3,
        }),
        Instruction::Healthcheck(Healthcheck::Check {
            test: s(&["CMD", "/bin/check", "--quick"]),
            interval: Default::default(),
            timeout: Default::default(),
            start_period: Default::default(),
            start_interval: Default::default(),
            retries: 0,
        }),
        Instruction::Healthcheck(Healthcheck::None),
    ];
    assert_eq!(got, want);

    // ONBUILD triggers parse as instructions of their own.
    let Instruction::Onbuild { expression } = &want[17] else {
        panic!()
    };
    let Instruction::Copy(c) = parse_onbuild_trigger(expression, '\\').unwrap() else {
        panic!()
    };
    assert_eq!(c.chown, "a:b");
    // The dump nests ONBUILD.
    let tree = parse(&corpus("config.Dockerfile")).unwrap();
    assert_eq!(
        tree.ast.children[17].dump(),
        "onbuild (run \"echo triggered\")"
    );

    // Expansion: ENV/LABEL values lose their quotes, EXPOSE splits, CMD stays.
    let env = EnvList::from_slice(&["PORT=8080 9090", "APP=web"]);
    let e = |i: usize| expand_instruction(&want[i], &env).unwrap();
    assert_eq!(
        e(8),
        Instruction::Expose(s(&["8080", "9090", "443", "80/tcp"]))
    );
    assert_eq!(
        e(9),
        Instruction::Env(vec![
            kv("A", "1", false),
            kv("B", "two words", false),
            kv("C", "three words", false)
        ])
    );
    assert_eq!(
        e(6),
        Instruction::Label(vec![
            kv("org.opencontainers.image.title", "My App", false),
            kv("version", "1.0", false),
            kv("quoted key", "v", false),
        ])
    );
    assert_eq!(e(14), Instruction::Workdir("/srv/web".into()));
    assert_eq!(e(1), want[1]);
}

#[test]
fn backtick_escape() {
    let df = parse_ok("escape.Dockerfile");
    assert_eq!(df.escape_token, '`');
    assert_eq!(df.directives.get("escape"), Some("`"));
    let st = &df.stages[0];
    assert_eq!(
        (st.name.as_deref(), st.base.as_str(), st.line),
        (Some("win"), "windows", lr(2, 3))
    );
    assert_eq!(
        st.instructions[0].0,
        Instruction::Run(Run {
            cmd: CommandLine::shell("dir C:\\   && echo done"),
            network: "default".into(),
            security: "sandbox".into(),
            ..Default::default()
        })
    );
    let Instruction::Copy(c) = &st.instructions[1].0 else {
        panic!()
    };
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (s(&["C:\\src\\"]), "C:\\dst\\")
    );
    let lex = Lex::new('`');
    assert_eq!(lex.process_word("C:\\a`$b", &EmptyEnv).unwrap(), "C:\\a$b");
}

#[test]
fn negative_cases() {
    let cases: &[(&str, usize, &str)] = &[
        ("unknown_instruction", 2, "unknown instruction: FOO"),
        ("unknown_instruction_nosuggest", 3, "unknown instruction: BUILDIT"),
        ("unknown_flag", 3, "unknown flag: --fro (did you mean from?)"),
        ("env_blank_name", 2, "ENV names can not be blank"),
        ("env_no_value", 2, "ENV must have two arguments"),
        ("from_two_args", 1, "FROM requires either one or three arguments"),
        ("from_bad_name", 1, "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
        ("no_stage", 1, "no build stage in current context"),
        ("unterminated_heredoc", 2, "unterminated heredoc"),
        ("copy_one_arg", 2, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("mount_mode_bind", 2, "mode not allowed for \"bind\" type mounts"),
        ("run_bad_network", 2, "invalid network mode \"bridge\""),
        ("shell_not_json", 2, "SHELL requires the arguments to be in JSON form"),
        ("healthcheck_interval", 2, "Interval \"interval\" cannot be less than 1ms"),
        ("healthcheck_type", 2, "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"),
        ("onbuild_chain", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("bad_escape", 1, "invalid escape token 'x' does not match ` or \\"),
        ("dup_directive", 2, "only one escape parser directive can be used"),
        ("cmd_not_strings", 2, "when using JSON array syntax, arrays must be comprised of strings only"),
        ("label_missing_eq", 2, "Syntax error - can't find = in \"c\". Must be of the form: name=value"),
        ("user_no_arg", 2, "USER requires exactly one argument"),
        ("bool_flag", 2, "expecting boolean value for flag --link, not: maybe"),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/negative");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        cases.len(),
        "every negative file has an expectation"
    );
    for (name, line, msg) in cases {
        let err = parse_stages(&corpus(&format!("negative/{name}.Dockerfile"))).expect_err(name);
        assert_eq!((err.line, err.message.as_str()), (*line, *msg), "{name}");
        assert_eq!(
            err.to_string(),
            format!("dockerfile parse error line {line}: {msg}")
        );
    }
}
