public import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The event loops an ``HTTPServer`` runs on when it is given none: one loop per CPU the process
/// may run on.
///
/// That is NIO's shared `MultiThreadedEventLoopGroup.singleton`, unless the process was
/// restricted to fewer CPUs than NIO counts (`taskset`, `sched_setaffinity`, `numactl
/// --physcpubind`): NIO's `System.coreCount` honours cgroup quotas and cpusets but not the
/// affinity mask, so on a machine of two CPUs a process pinned to one still gets two loops. Two
/// busy loops on one CPU are time-sliced by the kernel, and every connection of the loop that is
/// not running waits for a whole slice, several milliseconds: that was the WebSocket echo's p99
/// with the server pinned to one core. In that case this is a group of its own, one loop per
/// allowed CPU, kept for the life of the process as the singleton is.
///
/// A loop count chosen for the singleton (`NIO_SINGLETON_GROUP_LOOP_COUNT`, or
/// `NIOSingletons.groupLoopCountSuggestion` set before the first server) is respected: the
/// singleton is used as it is.
public enum HTTPServerEventLoops {
    /// The group: see the type's description.
    public static let group: any EventLoopGroup = {
        let chosen =
            getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") != nil
            || NIOSingletons.groupLoopCountSuggestion != System.coreCount
        guard let allowed = allowedCPUCount, allowed < System.coreCount, !chosen else {
            return MultiThreadedEventLoopGroup.singleton
        }
        return MultiThreadedEventLoopGroup(numberOfThreads: allowed)
    }()

    /// How many CPUs the process's affinity mask allows, or `nil` where it cannot be read.
    ///
    /// Read from the `Cpus_allowed` mask of `/proc/self/status` (comma-separated groups of hex
    /// digits), which is what `sched_getaffinity` returns for the calling thread.
    public static let allowedCPUCount: Int? = {
        #if os(Linux)
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            guard text.hasPrefix("Cpus_allowed:") else { continue }
            var count = 0
            for character in text.dropFirst("Cpus_allowed:".count) {
                guard let digit = character.hexDigitValue else { continue }
                count += digit.nonzeroBitCount
            }
            return count > 0 ? count : nil
        }
        return nil
        #else
        return nil
        #endif
    }()
}
