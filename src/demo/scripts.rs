//! The shell scripts the demo's agent writes to the server and runs in its three sessions.

/// A pretend build: coloured, compiler-like output over a few seconds.
pub const BUILD: &str = r#"#!/bin/sh
# agentssh demo: a pretend build with coloured, compiler-like output.
g='\033[1;32m'; y='\033[1;33m'; b='\033[1;34m'; n='\033[0m'
for crate in libc serde tokio russh ratatui agentssh; do
  printf "$g%12s$n %s v0.1.0\n" Compiling "$crate"
  sleep 0.3
done
printf "${y}warning$n: unused variable: \`attempt\`\n"
printf "  $b-->$n src/deploy.rs:42:9\n"
printf "$g%12s$n \`release\` profile [optimized] target(s) in 1.84s\n" Finished
"#;

/// A full-screen monitor for machines without `top`: redraws with escape codes.
pub const MONITOR: &str = r#"#!/bin/sh
# agentssh demo: a small full-screen monitor (used when top is not installed).
printf '\033[?1049h'
trap 'printf "\033[?1049l"; exit 0' INT TERM HUP
i=0
while :; do
  i=$((i + 1))
  printf '\033[H\033[2J\033[1;36mdemo monitor\033[0m  tick %d  %s\n\n' "$i" "$(date +%T)"
  printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  printf 'processes:    %s\n' "$(ls /proc | grep -c '^[0-9]')"
  sleep 1
done
"#;

/// A deploy step that stops at a `Proceed? [y/N]` prompt.
pub const DEPLOY: &str = r#"#!/bin/sh
# agentssh demo: a deploy that waits for a yes.
printf 'Deploying build 1.4.2 to demo-cluster (3 hosts)\n'
printf '  web-1 ... ready\n  web-2 ... ready\n  db-1  ... ready\n'
printf 'Proceed? [y/N] '
read answer
case "$answer" in
  y|Y|yes)
    printf 'Rolling out...\n'
    sleep 1
    printf 'Deploy complete: 3/3 hosts updated.\n' ;;
  *)
    printf 'Deploy cancelled.\n'
    exit 1 ;;
esac
"#;

/// What the deploy prints at its prompt.
pub const PROMPT: &str = "Proceed? [y/N]";
/// What the deploy prints when it ends (either way).
pub const DEPLOY_DONE: [&str; 2] = ["Deploy complete", "Deploy cancelled"];
