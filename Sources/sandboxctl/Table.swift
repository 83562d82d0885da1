#if canImport(Glibc)
import Glibc
#endif

/// Aligned text tables for people; colours only when stdout is a terminal (and `NO_COLOR` is unset).
struct Table {
    var header: [String]
    var rows: [[Cell]]

    /// One cell: its text and an optional ANSI colour (applied after padding so alignment holds).
    struct Cell {
        var text: String
        var colour: Colour?

        init(_ text: String, colour: Colour? = nil) {
            self.text = text
            self.colour = colour
        }
    }

    enum Colour: String {
        case green = "32", yellow = "33", red = "31", dim = "2", bold = "1"
    }

    static var useColour: Bool { isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil }

    func render(colour: Bool = Table.useColour) -> String {
        let widths = header.indices.map { column in
            max(header[column].count, rows.map { $0.indices.contains(column) ? $0[column].text.count : 0 }.max() ?? 0)
        }
        func line(_ cells: [Cell]) -> String {
            cells.enumerated().map { index, cell in
                let isLast = index == cells.count - 1
                let padded = isLast ? cell.text : cell.text + String(repeating: " ", count: widths[index] - cell.text.count)
                guard colour, let code = cell.colour else { return padded }
                return "\u{1B}[\(code.rawValue)m\(padded)\u{1B}[0m"
            }.joined(separator: "  ")
        }
        var lines = [line(header.map { Cell($0, colour: .bold) })]
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }

    /// The colour of a runtime state.
    static func colour(forState state: String) -> Colour? {
        switch state {
        case "running": .green
        case "starting", "backoff": .yellow
        case "failed": .red
        case "stopped": .dim
        default: nil
        }
    }
}
