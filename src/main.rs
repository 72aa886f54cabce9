fn main() {
    std::process::exit(agentssh::cli::main())
}
