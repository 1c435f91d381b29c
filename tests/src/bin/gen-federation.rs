//! Writes a provisioned-shaped federation for benchmarks: one server, N clients and an
//! admin of one project (real certificates), optionally with a large `custom/` folder
//! in the first client.
//!
//! `gen-federation DIR --clients N [--custom-files F --custom-bytes B] [--config docker.yaml]`
//! writes DIR/prod_00/<kits>; with --config each kit gets that file as config.yaml.

use std::io::Write;
use std::path::PathBuf;

use flare_deploy_tests::Project;

fn usage() -> ! {
    eprintln!("usage: gen-federation DIR --clients N [--custom-files F --custom-bytes B] [--config FILE]");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        usage()
    };
    let (mut clients, mut custom_files, mut custom_bytes, mut config) = (1usize, 0usize, 0u64, None::<PathBuf>);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--clients" => clients = value.parse().unwrap_or_else(|_| usage()),
            "--custom-files" => custom_files = value.parse().unwrap_or_else(|_| usage()),
            "--custom-bytes" => custom_bytes = value.parse().unwrap_or_else(|_| usage()),
            "--config" => config = Some(PathBuf::from(value)),
            _ => usage(),
        }
    }
    let prod = dir.join("prod_00");
    if prod.exists() {
        eprintln!("{} exists; remove it first", prod.display());
        std::process::exit(2);
    }
    std::fs::create_dir_all(&prod).unwrap_or_else(|e| panic!("create {}: {e}", prod.display()));
    let project = Project::new("bench_project");
    let mut kits = vec![project.server("server1").stale_resources_json(false).build(&prod)];
    for i in 1..=clients {
        kits.push(
            project
                .client(&format!("site-{i}"))
                .stale_resources_json(false)
                .build(&prod),
        );
    }
    project
        .admin("admin@nvidia.com")
        .stale_resources_json(false)
        .build(&prod);
    if custom_files > 0 {
        let custom = kits[1.min(kits.len() - 1)].dir.join("custom");
        let per_file = (custom_bytes / custom_files as u64) as usize;
        let block: Vec<u8> = (0..per_file)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37])
            .collect();
        for i in 0..custom_files {
            let sub = custom.join(format!("pkg{:03}", i % 100));
            std::fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("mkdir: {e}"));
            let mut file =
                std::fs::File::create(sub.join(format!("data{i:05}.bin"))).unwrap_or_else(|e| panic!("create: {e}"));
            file.write_all(&block).unwrap_or_else(|e| panic!("write: {e}"));
        }
    }
    if let Some(config) = config {
        for kit in &kits {
            std::fs::copy(&config, kit.dir.join("config.yaml")).unwrap_or_else(|e| panic!("copy config: {e}"));
        }
    }
    println!("{}", prod.display());
}
