//! `walstream version`: prints `v<crate version>` (Litestream prints `v0.3.13`). Accepts no flags
//! but `-h`; extra arguments are ignored, as in Litestream.

use super::{flags::FlagSet, parse_flags};

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    parse_flags(&FlagSet::new(), args, "version")?;
    println!("v{}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
