//! `hawker bench fanout` (being written).
pub async fn run(_args: &[&str]) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
