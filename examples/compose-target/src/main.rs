use flare_deploy_compose as _;

fn main() {
    std::process::exit(flare_deploy::run());
}
