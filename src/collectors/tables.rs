//! `tables`: placeholder until implemented.

use crate::collectors::{Collector, Ctx, Fetched, Scope, Source};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

pub struct Tables;

impl Collector for Tables {
    fn name(&self) -> &'static str {
        "tables"
    }
    fn description(&self) -> &'static str {
        "TODO"
    }
    fn scope(&self) -> Scope {
        Scope::PerDatabase
    }
    fn families(&self) -> &'static [&'static Family] {
        &[]
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::NotApplicable
    }
    fn map(&self, _ctx: &Ctx, _input: &Fetched, _out: &mut Sink) -> Result<(), CollectError> {
        Ok(())
    }
}
