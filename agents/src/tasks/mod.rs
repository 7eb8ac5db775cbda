//! Built-in tasks (work in progress by the tasks helper).
