/// What `requests` GETs of `path`, spread over `ports`, 100 in flight at a time, got back.
public struct ConcurrentRequestsResult: Sendable, Hashable {
    /// Responses by status code.
    public var statuses: [Int: Int]
    /// Responses carrying a `RateLimit` field.
    public var withRateLimitField: Int

    public init(statuses: [Int: Int], withRateLimitField: Int) {
        self.statuses = statuses
        self.withRateLimitField = withRateLimitField
    }
}

/// Sends the requests with Python httpx (the venv `scripts/test.sh` makes): a real client on
/// real sockets, from 127.0.0.1.
public func concurrentRequests(ports: [Int], path: String, count: Int) async throws -> ConcurrentRequestsResult {
    let script = """
        import asyncio, sys, httpx
        async def main(ports, path, total):
            # 100 workers, 100 requests in flight, each worker with a client and a connection of
            # its own: one client shared by 100 waiting requests spent about 7 ms of CPU per
            # request in its pool's queue (1,000 requests: 8 s of Python on this VM, 2 s now).
            # verify=False: plain http, and no CA bundle loaded per client.
            async def worker(first):
                results = []
                async with httpx.AsyncClient(timeout=60, verify=False) as client:
                    for i in range(first, total, 100):
                        for attempt in range(5):
                            try:
                                response = await client.get(f"http://127.0.0.1:{ports[i % len(ports)]}{path}")
                                results.append((response.status_code, "RateLimit" in response.headers))
                                break
                            except httpx.ConnectError:
                                # Refused before anything was sent (a full accept queue on a
                                # loaded machine): nothing was decided, so trying again is safe.
                                await asyncio.sleep(0.05 * (attempt + 1))
                            except httpx.HTTPError as error:
                                results.append((type(error).__name__, False))
                                break
                        else:
                            results.append(("ConnectError", False))
                return results
            workers = await asyncio.gather(*(worker(first) for first in range(min(100, total))))
            results = [result for results in workers for result in results]
            for code in sorted(set(str(code) for code, _ in results)):
                print(code, sum(1 for c, _ in results if str(c) == code))
            print("field", sum(1 for _, field in results if field))
        asyncio.run(main([int(port) for port in sys.argv[1].split(",")], sys.argv[2], int(sys.argv[3])))
        """
    let output = try await ExternalProcess.run(
        try ExternalProcess.python(),
        ["-c", script, ports.map(String.init).joined(separator: ","), path, String(count)], timeout: .seconds(300))
    var result = ConcurrentRequestsResult(statuses: [:], withRateLimitField: 0)
    var failures: [String] = []
    for line in output.stdout.split(separator: "\n") {
        let words = line.split(separator: " ")
        guard words.count == 2, let number = Int(words[1]) else { continue }
        if words[0] == "field" {
            result.withRateLimitField = number
        } else if let code = Int(words[0]) {
            result.statuses[code] = number
        } else {
            failures.append("\(number) × \(words[0])")
        }
    }
    guard failures.isEmpty else {
        throw ExternalProcess.Failure(description: "httpx requests failed: \(failures.joined(separator: ", "))")
    }
    guard result.statuses.values.reduce(0, +) == count else {
        throw ExternalProcess.Failure(description: "httpx run incomplete: \(output.stdout) \(output.stderr)")
    }
    return result
}
