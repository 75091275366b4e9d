// SVMMGuestMemoryTests
