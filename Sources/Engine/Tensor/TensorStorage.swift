import Foundation

/// A uniquely owned, 64-byte aligned buffer of `Float32` values.
///
/// Storage is written only by the kernel that creates it; afterwards every tensor that shares it
/// treats it as immutable. That is what makes snapshots and graph recording safe.
package final class TensorStorage: @unchecked Sendable {
    package let pointer: UnsafeMutablePointer<Float>
    package let count: Int
    private let byteCount: Int

    /// Allocates `count` uninitialised values.
    package init(count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        let (raw, capacity) = StoragePool.allocate(StoragePool.roundedSize(max(count, 1) * MemoryLayout<Float>.stride))
        byteCount = capacity
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if MemoryProfile.isEnabled { MemoryProfile.allocated(raw, capacity) }
    }

    deinit {
        if MemoryProfile.isEnabled { MemoryProfile.released(UnsafeMutableRawPointer(pointer)) }
        StoragePool.release(UnsafeMutableRawPointer(pointer), byteCount)
    }
}

/// A caching allocator: freed buffers are kept by size and handed out again, so that a training
/// loop, which allocates the same sizes every step, stops paying for fresh zeroed pages from the
/// kernel (measured: over a quarter of a small ResNet's step without it).
///
/// A workload whose phases use different sizes (MMKD's look-ahead, replay and ordinary steps) would
/// otherwise hold the cache of one phase while the next allocates afresh, so the pool (live plus
/// cached bytes) is kept within `slackBytes` of the most bytes ever live at once: at that limit a
/// miss first takes the smallest cached buffer of up to twice the size, then gives cached buffers
/// back to the system. Resident memory stays near the true high-water mark (measured on MMKD's
/// vgg meta step: 1.36 GB instead of 1.6–1.8 GB, for about the same time).
package enum StoragePool {
    /// Bytes the pool may hold above the live high-water mark. 128 MB: at 64 MB, MMKD on 3 ×
    /// resnet32x4 → MobileNetV2 (live peak 722 MB, in the meta step) faulted in 496k fresh pages per
    /// bench run instead of 258k and its period was 10% slower (`bench distill --config
    /// resnet32x4:MobileNetV2 --no-torch --rounds 1 --repeats 3`, three alternations); peak
    /// resident memory 914 MB against 848 MB.
    nonisolated(unsafe) package static var slackBytes = 128 << 20

    nonisolated(unsafe) private static var buckets: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var cachedBytes = 0
    nonisolated(unsafe) private static var liveBytes = 0
    nonisolated(unsafe) private static var peakLiveBytes = 0
    private static let lock = NSLock()

    /// Sizes are rounded (64 bytes below 64 KiB, 4 KiB above) so that near sizes share buckets.
    static func roundedSize(_ bytes: Int) -> Int {
        bytes < 65_536 ? (bytes + 63) & ~63 : (bytes + 4095) & ~4095
    }

    /// A buffer of at least `bytes` (rounded) bytes, and its actual size: a cached buffer of the
    /// same size, else, when the pool is at its limit, the smallest cached buffer of up to twice the
    /// size (a mapped one cut to `bytes`, its tail unmapped), else a new one.
    static func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        lock.lock()
        func hand(_ size: Int, fromCache: Bool) {
            if fromCache { cachedBytes -= size }
            liveBytes += size
            peakLiveBytes = max(peakLiveBytes, liveBytes)
        }
        if let p = buckets[bytes]?.popLast() {
            hand(bytes, fromCache: true)
            lock.unlock()
            return (p, bytes)
        }
        let limit = peakLiveBytes + slackBytes
        if liveBytes + cachedBytes + bytes > limit,
           let size = buckets.keys.filter({ $0 > bytes && $0 <= 2 * bytes && buckets[$0]?.isEmpty == false }).min(),
           let p = buckets[size]?.popLast() {
            // Trimming needs both sizes mapped (≥ 64 KiB, so page multiples); else lend it whole.
            guard bytes >= 65_536 else {
                hand(size, fromCache: true)
                lock.unlock()
                return (p, size)
            }
            // A mapped buffer: keep its first `bytes` (pages already in memory) and give the tail
            // back to the system.
            cachedBytes -= size
            hand(bytes, fromCache: false)
            lock.unlock()
            munmap(p + bytes, size - bytes)
            return (p, bytes)
        }
        hand(bytes, fromCache: false)
        var evicted: [(UnsafeMutableRawPointer, Int)] = []
        // Largest sizes first: fewest buffers to give back.
        for size in buckets.keys.sorted(by: >) where liveBytes + cachedBytes > limit {
            while liveBytes + cachedBytes > limit, let p = buckets[size]?.popLast() {
                evicted.append((p, size))
                cachedBytes -= size
            }
            if buckets[size]?.isEmpty == true { buckets[size] = nil }
        }
        lock.unlock()
        for (p, size) in evicted { system(free: p, size) }
        return (system(allocate: bytes), bytes)
    }

    /// Large buffers are mapped and unmapped directly, so that a buffer given back really leaves
    /// the process (the C heap would keep it, and reuse it only for sizes it happens to fit).
    /// Buffers of 2 MiB and more start on a 2 MiB boundary and ask for transparent huge pages
    /// (`MADV_HUGEPAGE`; Debian's default mode is "madvise"), so that first use costs one page
    /// fault per 2 MiB instead of 512: on MMKD's vgg13:vgg8 steps, whose phases allocate afresh,
    /// the kernel's fault handling was an eighth of the time, and the period is 10% shorter with huge
    /// pages (median of three alternations), at the same peak resident memory. `MMKD_HUGE_PAGES=0` maps them as before (plain pages).
    private static func system(allocate bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= 65_536 else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        let huge = bytes >= hugePage && hugePagesWanted
        let span = huge ? bytes + hugePage : bytes
        guard let p = mmap(nil, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("StoragePool: cannot map \(bytes) bytes (errno \(errno))")
        }
        guard huge else { return p }
        // Keep the 2 MiB-aligned `bytes` inside the span; give back the rest on both sides.
        let head = (hugePage - Int(UInt(bitPattern: p) % UInt(hugePage))) % hugePage
        if head > 0 { munmap(p, head) }
        if span - head - bytes > 0 { munmap(p + head + bytes, span - head - bytes) }
        _ = madvise(p + head, bytes, MADV_HUGEPAGE)  // advice only: without THP, ordinary pages
        return p + head
    }

    private static let hugePage = 2 << 20
    private static let hugePagesWanted = ProcessInfo.processInfo.environment["MMKD_HUGE_PAGES"] != "0"

    private static func system(free pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= 65_536 { munmap(pointer, bytes) } else { pointer.deallocate() }
    }

    static func release(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        lock.lock()
        liveBytes -= bytes
        buckets[bytes, default: []].append(pointer)
        cachedBytes += bytes
        lock.unlock()
    }
}
