/// The signalling speed a device was enumerated at.
public enum USBSpeed: String, Sendable, Equatable, CaseIterable {
    case unknown
    case low
    case full
    case high
    case `super` = "super"
    case superPlus = "super-plus"

    /// Nominal signalling rate in Mb/s, as sysfs `speed` shows it (1.5, 12,
    /// 480, 5000, 10000); nil when unknown.
    public var megabitsPerSecond: Double? {
        switch self {
        case .unknown: return nil
        case .low: return 1.5
        case .full: return 12
        case .high: return 480
        case .super: return 5000
        case .superPlus: return 10000
        }
    }

    /// The libusb `enum libusb_speed` value (LIBUSB_SPEED_*).
    public init(libusbSpeed value: Int32) {
        switch value {
        case 1: self = .low
        case 2: self = .full
        case 3: self = .high
        case 4: self = .super
        case 5: self = .superPlus
        default: self = .unknown
        }
    }

    /// The sysfs `speed` attribute ("1.5", "12", "480", "5000", "10000", "20000").
    public init(sysfsSpeed text: String) {
        switch text.trimmingCharacters(in: [" ", "\n"]) {
        case "1.5": self = .low
        case "12": self = .full
        case "480": self = .high
        case "5000": self = .super
        case "10000", "20000": self = .superPlus
        default: self = .unknown
        }
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
