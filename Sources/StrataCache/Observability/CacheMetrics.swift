import CoreMetrics

/// The cache's counters, through swift-metrics.
///
/// - `strata_cache_hits_total`: answered from the store, fresh.
/// - `strata_cache_misses_total`: nothing usable stored; the origin answered.
/// - `strata_cache_stale_served_total`: answered stale (`stale-while-revalidate`,
///   `stale-if-error`, `max-stale`).
/// - `strata_cache_revalidations_total{result}`: conditional requests to the origin, by outcome
///   (`not_modified`, `replaced`, `failed`).
/// - `strata_cache_collapsed_total`: requests that waited for another's origin response.
/// - `strata_cache_store_errors_total{operation}`: store failures (the request went to the origin).
/// - `strata_cache_evictions_total`: counted by the memory store.
struct CacheMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let staleServed: Counter
    let notModified: Counter
    let replaced: Counter
    let revalidationFailed: Counter
    let collapsed: Counter
    let lookupErrors: Counter
    let writeErrors: Counter

    init(factory: (any MetricsFactory)?) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            if let factory { return Counter(label: label, dimensions: dimensions, factory: factory) }
            return Counter(label: label, dimensions: dimensions)
        }
        self.hits = counter("strata_cache_hits_total")
        self.misses = counter("strata_cache_misses_total")
        self.staleServed = counter("strata_cache_stale_served_total")
        self.notModified = counter("strata_cache_revalidations_total", [("result", "not_modified")])
        self.replaced = counter("strata_cache_revalidations_total", [("result", "replaced")])
        self.revalidationFailed = counter("strata_cache_revalidations_total", [("result", "failed")])
        self.collapsed = counter("strata_cache_collapsed_total")
        self.lookupErrors = counter("strata_cache_store_errors_total", [("operation", "lookup")])
        self.writeErrors = counter("strata_cache_store_errors_total", [("operation", "write")])
    }
}
