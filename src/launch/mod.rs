//! Launching programs in the cluster: from the words of a command to a
//! program (`program`), its bundle (`bundle`), the decisions about it
//! (`plan`), the objects that run it (`objects`), and creating and waiting
//! for them (`run`); a foreground program run again on every save
//! (`rerun`, with `saves`). It knows nothing of the shell: it is handed a
//! program and its settings and returns what happened.

pub mod bundle;
pub mod executable;
pub mod input;
pub mod names;
pub mod objects;
pub mod plan;
pub mod program;
pub mod rerun;
pub mod run;
pub mod saves;
