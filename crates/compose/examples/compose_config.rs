//! `compose_config FILE...`: prints the normalized project like
//! `docker compose -f FILE config --format json`, using the process environment.

fn main() {
    let files: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    let opts = berth_compose::Options {
        working_dir: std::env::current_dir().unwrap_or_default(),
        files,
        env: std::env::vars().collect(),
        ..Default::default()
    };
    match berth_compose::load(&opts).and_then(|p| p.to_json()) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
