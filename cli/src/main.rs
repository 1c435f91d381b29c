fn main() {
    std::process::exit(flare_deploy::run());
}
