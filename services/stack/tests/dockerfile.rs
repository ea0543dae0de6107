//! services/Dockerfile: one builder stage for the three binaries, a named final stage per
//! service. No Docker engine runs here, so the file is checked statically: `hadolint` (a real
//! linter), and the rules of the deployment read from the parsed instructions.

use rsky_stack::tool::HADOLINT;
use rsky_stack::workspace_root;

const DOCKERFILE: &str = "services/Dockerfile";
const SERVICES: [(&str, u16); 3] = [("ingester", 4100), ("backfiller", 9090), ("indexer", 9090)];

/// One instruction: its keyword (upper case) and the rest of the line, continuations joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// A build stage: its `FROM` line's base and name, and its instructions after `FROM`.
#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn parse(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let instruction = Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction.args.split(' ').collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            };
            stages.push(Stage {
                base: words[0].to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else {
            let stage = stages
                .last_mut()
                .unwrap_or_else(|| panic!("{line:?} before any FROM"));
            stage.instructions.push(instruction);
        }
    }
    stages
}

fn stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(workspace_root().join(DOCKERFILE))
        .unwrap_or_else(|e| panic!("{DOCKERFILE}: {e}"));
    parse(&text)
}

fn stage<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{DOCKERFILE} has no stage named {name}"))
}

/// The stage's instructions, its bases' first (a stage `FROM` another inherits USER, ENV...).
fn effective(stages: &[Stage], name: &str) -> Vec<Instruction> {
    let s = stage(stages, name);
    let mut all = match stages.iter().any(|b| b.name.as_deref() == Some(&s.base)) {
        true => effective(stages, &s.base),
        false => Vec::new(),
    };
    all.extend(s.instructions.iter().cloned());
    all
}

fn with<'a>(instructions: &'a [Instruction], keyword: &str) -> Vec<&'a Instruction> {
    instructions
        .iter()
        .filter(|i| i.keyword == keyword)
        .collect()
}

#[test]
fn hadolint_passes() {
    let root = workspace_root();
    let out = HADOLINT
        .output(&["--failure-threshold", "info", DOCKERFILE], &root)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "hadolint {DOCKERFILE}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_build_stage_compiles_the_three_binaries_with_cache_mounts() {
    let stages = stages();
    let builds: Vec<&Instruction> = stages
        .iter()
        .flat_map(|s| &s.instructions)
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .collect();
    assert_eq!(
        builds.len(),
        1,
        "one cargo build for the workspace: {builds:?}"
    );
    let build = &builds[0].args;
    for (service, _) in SERVICES {
        assert!(
            build.contains(&format!("-p rsky-{service} --bin {service}")),
            "the build does not compile rsky-{service}'s {service}: {build}"
        );
    }
    assert!(build.contains("--release --locked"), "{build}");
    for target in [
        "/usr/local/cargo/registry",
        "/usr/local/cargo/git",
        "/src/target",
    ] {
        assert!(
            build.contains(&format!("--mount=type=cache,target={target}")),
            "no BuildKit cache mount on {target}: {build}"
        );
    }
    // The binary declared by each package is the one built.
    for (service, _) in SERVICES {
        let manifest = std::fs::read_to_string(
            workspace_root().join(format!("services/{service}/Cargo.toml")),
        )
        .unwrap();
        assert!(manifest.contains(&format!("name = \"rsky-{service}\"")));
        assert!(manifest.contains(&format!("name = \"{service}\"")));
    }
}

#[test]
fn each_service_stage_copies_only_its_binary_runs_unprivileged_and_checks_its_health() {
    let stages = stages();
    for (service, port) in SERVICES {
        let own = &stage(&stages, service).instructions;
        let all = effective(&stages, service);

        // Only the binary: one COPY, from the build stage, of that binary; no RUN (so no
        // package installed: no ca-certificates, the TLS stacks bundle their roots).
        let copies = with(own, "COPY");
        assert_eq!(copies.len(), 1, "{service}: {copies:?}");
        assert!(
            copies[0].args.starts_with("--from=build ")
                && copies[0]
                    .args
                    .ends_with(&format!("/out/{service} /usr/local/bin/{service}")),
            "{service}: {}",
            copies[0].args
        );
        for i in &all {
            assert!(
                !matches!(i.keyword.as_str(), "RUN" | "ADD"),
                "{service}'s image runs or adds something: {i:?}"
            );
        }
        assert!(
            !all.iter().any(|i| i.args.contains("ca-certificates")),
            "{service}: ca-certificates"
        );

        // Not root: the last USER is a non-zero uid (numeric: no passwd entry needed).
        let user = with(&all, "USER")
            .last()
            .map(|i| i.args.clone())
            .unwrap_or_else(|| panic!("{service} runs as root (no USER)"));
        let uid = user.split(':').next().unwrap_or("");
        assert!(
            uid.parse::<u32>().is_ok_and(|uid| uid != 0),
            "{service}: USER {user} is not a non-root uid"
        );

        // HEALTHCHECK through the binary itself.
        let health = with(own, "HEALTHCHECK");
        assert_eq!(health.len(), 1, "{service}: HEALTHCHECK");
        assert!(
            health[0]
                .args
                .ends_with(&format!("CMD [\"/usr/local/bin/{service}\", \"health\"]")),
            "{service}: {}",
            health[0].args
        );
        assert!(
            health[0].args.contains("--timeout="),
            "{service}: no timeout"
        );

        let env: Vec<&str> = with(&all, "ENV").iter().map(|i| i.args.as_str()).collect();
        assert!(
            env.contains(&format!("METRICS_PORT={port}").as_str()),
            "{service}: {env:?}"
        );
        assert!(own
            .iter()
            .any(|i| i.keyword == "EXPOSE" && i.args == port.to_string()));
        assert!(own
            .iter()
            .any(|i| i.keyword == "ENTRYPOINT"
                && i.args == format!("[\"/usr/local/bin/{service}\"]")));
    }
}

#[test]
fn the_binaries_run_on_the_debian_release_they_are_built_on() {
    let stages = stages();
    let build = stage(&stages, "build");
    let runtime = stage(&stages, "runtime");
    let release = |base: &str| base.rsplit('-').next().unwrap_or("").to_owned();
    assert_eq!(release(&build.base), "bookworm", "{}", build.base);
    assert_eq!(runtime.base, "debian:bookworm-slim");
}

#[test]
fn there_is_one_dockerfile_for_the_services() {
    for (service, _) in SERVICES {
        let old = workspace_root().join(format!("services/{service}/Dockerfile"));
        assert!(
            !old.exists(),
            "{} duplicates services/Dockerfile's {service} target",
            old.display()
        );
    }
}

#[test]
fn the_parser_reads_continuations_stages_and_inheritance() {
    let stages = parse("# c\nFROM a AS one\nUSER 1\nFROM one AS two\nRUN x \\\n    y\n");
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[1].base, "one");
    assert_eq!(stages[1].instructions[0].args, "x y");
    let all = effective(&stages, "two");
    assert_eq!(all[0].keyword, "USER");
}
