//! Shell completions and the man page, both made from the clap definition.

use std::io::Write;

use clap_complete::Shell;

use crate::args::{cli_command, CompletionShell};

pub fn completions(shell: CompletionShell) -> i32 {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut command = cli_command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "flare-deploy", &mut out);
    if shell == Shell::Bash {
        // clap_complete 4.6 mangles the '-' of the program name two ways in its bash
        // script (`flare__deploy__subcmd__prepare` is set, `flare__subcmd__deploy__subcmd__prepare`
        // is matched), so no subcommand option would complete. Make the two agree;
        // tests/tests/cli_packaging.rs completes options in a real bash.
        let text = String::from_utf8_lossy(&out).replace("flare__subcmd__deploy", "flare__deploy");
        return write_stdout(text.as_bytes());
    }
    write_stdout(&out)
}

/// The man page: `flare-deploy(1)` with every command's options (clap_mangen renders
/// subcommands as sections of the one page).
pub fn man_page() -> i32 {
    let mut command = cli_command();
    command.build();
    let mut out = Vec::new();
    if clap_mangen::Man::new(command.clone()).render(&mut out).is_err() {
        return 5;
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        // One section per command, with its own options, after the main page.
        let _ = writeln!(out, ".SH \"FLARE-DEPLOY {}\"", sub.get_name().to_uppercase());
        let man = clap_mangen::Man::new(sub.clone());
        let _ = man.render_description_section(&mut out);
        let _ = man.render_options_section(&mut out);
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        // A closed pipe (`| head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(_) => 5,
    }
}
