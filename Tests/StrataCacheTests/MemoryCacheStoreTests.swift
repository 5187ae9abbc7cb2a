import HTTPTypes
import MetricsTestKit
import NIOCore
import Strata
import StrataCache
import StrataTesting
import Testing

/// The memory store's bounds and the metadata encoding of stores outside the process.
@Suite struct MemoryCacheStoreTests {
    private func entry(_ variant: String = "", bytes: Int = 100, tags: [String] = [], until: Timestamp)
        -> CachedResponse
    {
        CachedResponse(
            status: .ok, headerFields: [.contentType: "text/plain"], body: ByteBuffer(repeating: 1, count: bytes),
            bodyLength: bytes, variantKey: variant, requestTime: Timestamp(secondsSince1970: 1),
            responseTime: Timestamp(secondsSince1970: 2), ageValue: 0, tags: tags, storedUntil: until)
    }

    @Test func itStaysWithinItsBytesEvictingTheLeastRecentlyUsed() async throws {
        let clock = ManualClock()
        let metrics = TestMetrics()
        let until = clock.now() + .seconds(60)
        // Room for four entries and a half.
        let bound = self.entry(bytes: 1_000, until: until).approximateSize * 9 / 2
        let store = MemoryCacheStore(maximumBytes: bound, clock: clock, metricsFactory: metrics)
        for index in 0..<4 { try await store.store(self.entry(bytes: 1_000, until: until), for: "k\(index)") }
        // Touch k0, so k1 is the least recently used.
        _ = try await store.variants(for: "k0")
        try await store.store(self.entry(bytes: 1_000, until: until), for: "k4")
        #expect(store.currentBytes <= bound)
        #expect(try await store.variants(for: "k1").isEmpty)
        #expect(try await store.variants(for: "k0").count == 1)
        #expect(try metrics.expectCounter("strata_cache_evictions_total", [("store", "memory")]).totalValue >= 1)
    }

    @Test func anEntryLargerThanTheStoreIsNotKept() async throws {
        let store = MemoryCacheStore(maximumBytes: 1_000)
        try await store.store(
            self.entry(bytes: 2_000, until: Timestamp(secondsSince1970: Int64.max / 2_000_000_000)), for: "k")
        #expect(store.count == 0)
    }

    @Test func expiredEntriesAreGoneAndVariantsAreReplacedAndBounded() async throws {
        let clock = ManualClock()
        let store = MemoryCacheStore(maximumVariants: 2, clock: clock)
        let until = clock.now() + .seconds(10)
        try await store.store(self.entry("a", until: until), for: "k")
        try await store.store(self.entry("a", bytes: 5, until: until), for: "k")
        #expect(try await store.variants(for: "k").map(\.bodyLength) == [5])
        try await store.store(self.entry("b", until: until), for: "k")
        try await store.store(self.entry("c", until: until), for: "k")
        #expect(try await store.variants(for: "k").map(\.variantKey) == ["b", "c"])
        clock.advance(by: .seconds(11))
        #expect(try await store.variants(for: "k").isEmpty)
        #expect(store.count == 0)
        #expect(store.currentBytes == 0)
    }

    @Test func tagsFollowTheirEntries() async throws {
        let clock = ManualClock()
        let store = MemoryCacheStore(clock: clock)
        let until = clock.now() + .seconds(10)
        try await store.store(self.entry(tags: ["x", "y"], until: until), for: "a")
        try await store.store(self.entry(tags: ["x"], until: until), for: "b")
        try await store.remove("b")
        #expect(try await store.removeTagged("x") == 1)
        #expect(try await store.removeTagged("y") == 0)
        #expect(store.count == 0)
        // A response stored again without its tags is no longer found by them.
        try await store.store(self.entry(tags: ["z"], until: until), for: "c")
        try await store.store(self.entry(until: until), for: "c")
        #expect(try await store.removeTagged("z") == 0)
        #expect(store.count == 1)
    }

    @Test func metadataRoundTripsAndDamagedBytesAreRefused() throws {
        var original = self.entry("accept-encoding:gzip\n", tags: ["t"], until: Timestamp(secondsSince1970: 99))
        original.headerFields.append(HTTPField(name: .vary, value: "Accept-Encoding"))
        let decoded = try CachedResponse(metadata: original.encodedMetadata())
        #expect(decoded.headerFields == original.headerFields)
        #expect(decoded.variantKey == original.variantKey)
        #expect(decoded.storedUntil == original.storedUntil)
        #expect(decoded.tags == ["t"])
        #expect(decoded.bodyLength == 100)
        #expect(decoded.body == nil)
        var damaged = original.encodedMetadata()
        damaged.moveWriterIndex(to: damaged.writerIndex - 3)
        #expect(throws: CacheStoreError.self) { try CachedResponse(metadata: damaged) }
        #expect(throws: CacheStoreError.self) { try CachedResponse(metadata: ByteBuffer(string: "not metadata")) }
    }
}
