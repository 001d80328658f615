//! Work spread over the machine's cores, for the few steps that load Automerge documents in
//! bulk (an upload's dossiers, the checker's batch): loading is nearly all of their cost.

/// `work` on each item, on every core, results in the items' order. Loading bytes from outside
/// may panic inside a library: the items of a part whose thread panicked get `panicked`.
pub fn on_every_core<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    panicked: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(workers).max(1);
    if per >= items.len() {
        return items.iter().map(&work).collect();
    }
    let (work, panicked) = (&work, &panicked);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|part| {
                (
                    part,
                    scope.spawn(move || part.iter().map(work).collect::<Vec<_>>()),
                )
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(part, thread)| {
                thread
                    .join()
                    .unwrap_or_else(|_| part.iter().map(panicked).collect())
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::on_every_core;

    #[test]
    fn results_keep_their_order_and_a_panic_costs_only_its_part() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = on_every_core(&items, |i| i * 2, |_| u32::MAX);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = on_every_core(
            &items,
            |i| if *i == 999 { panic!("bad input") } else { *i },
            |_| u32::MAX,
        );
        std::panic::set_hook(hook);
        assert_eq!(out.len(), items.len());
        assert_eq!(out[999], u32::MAX);
        assert_eq!(out[0], 0, "the first part is unharmed");
    }
}
