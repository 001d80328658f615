// The Fieldbook window. Everything lives in the library (`fieldbook_app::desktop::run`), which
// the mobile shell calls too.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    fieldbook_app::desktop::run();
}
