// `sqlx::migrate!` embeds migrations/ at compile time; without this, a new migration file
// would not rebuild the crate (cargo does not know the macro read the folder).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
