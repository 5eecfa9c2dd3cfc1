import NIOCore
import Synchronization

/// One inbound frame: a line (without its newline and an optional carriage return before it), or the news that a
/// line was dropped unread: longer than the bound, or arriving while the server held more unfinished lines than its
/// server-wide bound.
public enum LineFrame: Sendable, Hashable {
    case line(ByteBuffer)
    case oversize
    /// Dropped because the unfinished lines of all connections held more than `maximumBytes` when it grew past
    /// `UnfinishedLineBytes.alwaysTakenBytes`.
    case overloaded(maximumBytes: Int)
}

/// The bytes of lines still arriving (no newline yet), buffered over every connection, and their server-wide bound.
///
/// Why: each connection buffers up to a frame of a line until its newline, so without it 1 024 connections that
/// each sent a frame's worth without the newline held about 1.1 GiB until the idle timeout closed them.
public final class UnfinishedLineBytes: Sendable {
    /// A line is always taken up to this size, whatever the others hold: ordinary requests are never refused by this
    /// bound (at most the connections times this, 4 MiB over 1 024, past it).
    public static let alwaysTakenBytes = 4096

    public let maximumBytes: Int
    private let held = Atomic<Int>(0)

    public init(maximumBytes: Int) {
        precondition(maximumBytes > 0, "a bound on unfinished lines is positive")
        self.maximumBytes = maximumBytes
    }

    /// What the unfinished lines of every connection hold now.
    public var bytes: Int { held.load(ordering: .relaxed) }

    /// One connection's unfinished line grows from `counted` to `buffered` bytes. Counted when it stays within
    /// `alwaysTakenBytes`, when everything held stays within the bound, or when this line is all that is held (so a
    /// bound set below a frame still lets a line through alone); false, counting nothing, otherwise.
    func grow(from counted: Int, to buffered: Int) -> Bool {
        precondition(buffered >= counted && counted >= 0, "an unfinished line only grows until it is let go")
        let delta = buffered - counted
        guard delta > 0 else { return true }
        if buffered <= Self.alwaysTakenBytes {
            held.add(delta, ordering: .relaxed)
            return true
        }
        return held.add(delta) { current in current + delta <= maximumBytes || current == counted }
    }

    /// One connection's unfinished line of `counted` bytes ended: its newline came, it was dropped, or the
    /// connection closed.
    func release(_ counted: Int) {
        guard counted > 0 else { return }
        let now = held.subtract(counted, ordering: .relaxed).newValue
        assert(now >= 0, "an unfinished line's bytes are let go once, after they were counted")
    }
}

/// Splits the byte stream into newline-terminated lines of at most `maximumFrameBytes`.
///
/// An oversize line is never buffered: once more than the bound has arrived without a newline, the bytes are
/// dropped as they come until the line's newline, and then one `.oversize` frame is passed on. The server answers
/// it with an error and the connection stays usable for the lines after it. A line whose growth the server-wide
/// bound on unfinished lines refuses is dropped the same way, and passed on as `.overloaded`.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = LineFrame

    /// Why the rest of a line is being dropped.
    private enum Dropping {
        case oversize
        case overloaded(maximumBytes: Int)

        var frame: LineFrame {
            switch self {
            case .oversize: .oversize
            case .overloaded(let maximumBytes): .overloaded(maximumBytes: maximumBytes)
            }
        }
    }

    public let maximumFrameBytes: Int
    /// The server-wide count this decoder's unfinished line is counted in; nil: not counted.
    private let unfinishedLines: UnfinishedLineBytes?
    /// Set while dropping the rest of a line.
    private var dropping: Dropping?
    /// Bytes of the buffered, unfinished line already searched for a newline, so each byte is looked at once.
    private var searchedBytes = 0
    /// Bytes of the unfinished line counted in `unfinishedLines`.
    private var countedBytes = 0

    public init(maximumFrameBytes: Int, unfinishedLines: UnfinishedLineBytes? = nil) {
        precondition(maximumFrameBytes > 0, "a frame bound is positive")
        self.maximumFrameBytes = maximumFrameBytes
        self.unfinishedLines = unfinishedLines
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        let searchStart = view.startIndex + searchedBytes
        guard let newline = view[searchStart...].firstIndex(of: 0x0A) else {
            searchedBytes = view.count
            // One byte more than the bound may still be the carriage return before a newline yet to come.
            if dropping == nil, view.count > maximumFrameBytes + 1 { dropping = .oversize }
            if dropping == nil, let unfinishedLines, !unfinishedLines.grow(from: countedBytes, to: view.count) {
                dropping = .overloaded(maximumBytes: unfinishedLines.maximumBytes)
            }
            if dropping == nil {
                countedBytes = view.count
            } else {
                // Drop what has arrived of the line; keep nothing of it.
                buffer.moveReaderIndex(forwardBy: view.count)
                searchedBytes = 0
                releaseCountedBytes()
            }
            return .needMoreData
        }
        let length = newline - view.startIndex
        searchedBytes = 0
        // The line is whole: it is decoded as it is passed on, and its buffer is let go of or reused.
        releaseCountedBytes()
        // A carriage return before the newline is not part of the line, so it does not count against the bound.
        let endsWithCarriageReturn = length > 0 && view[newline - 1] == 0x0D
        if let dropped = dropping ?? (length - (endsWithCarriageReturn ? 1 : 0) > maximumFrameBytes ? .oversize : nil) {
            dropping = nil
            buffer.moveReaderIndex(forwardBy: length + 1)
            context.fireChannelRead(Self.wrapInboundOut(dropped.frame))
            return .continue
        }
        guard var line = buffer.readSlice(length: length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == 0x0D { line.moveWriterIndex(to: line.writerIndex - 1) }
        context.fireChannelRead(Self.wrapInboundOut(.line(line)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        releaseCountedBytes()
        // A last line without its newline still counts as a message.
        if let dropped = dropping {
            dropping = nil
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(Self.wrapInboundOut(dropped.frame))
        } else if buffer.readableBytes > maximumFrameBytes {
            // The one byte of slack kept for a carriage return: with no newline to come, it is over the bound.
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(Self.wrapInboundOut(.oversize))
        } else if buffer.readableBytes > 0, let line = buffer.readSlice(length: buffer.readableBytes) {
            context.fireChannelRead(Self.wrapInboundOut(.line(line)))
        }
        searchedBytes = 0
        return .needMoreData
    }

    /// The handler is gone with its buffer: what was counted of its line goes. (Closing passes the last line on first,
    /// which lets it go already; this covers a handler removed without that, as one in an error state is.)
    public mutating func decoderRemoved(context: ChannelHandlerContext) {
        releaseCountedBytes()
    }

    private mutating func releaseCountedBytes() {
        unfinishedLines?.release(countedBytes)
        countedBytes = 0
    }
}
