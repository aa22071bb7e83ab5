// Great-circle distances against published city-to-city figures.
#include "match/geo.h"

#include <cmath>

#include "gtest/gtest.h"

namespace trialmatch::match {
namespace {

struct City {
  double lat;
  double lon;
};

constexpr City kLondon{51.5074, -0.1278};
constexpr City kParis{48.8566, 2.3522};
constexpr City kNewYork{40.7128, -74.0060};
constexpr City kLosAngeles{34.0522, -118.2437};
constexpr City kSydney{-33.8688, 151.2093};
constexpr City kMelbourne{-37.8136, 144.9631};
constexpr City kTokyo{35.6762, 139.6503};

double Km(City a, City b) { return HaversineKm(a.lat, a.lon, b.lat, b.lon); }

TEST(HaversineTest, KnownCityDistances) {
  // Great-circle distances as commonly published (to the km), within 0.5 %.
  EXPECT_NEAR(Km(kLondon, kParis), 344, 344 * 0.005);
  EXPECT_NEAR(Km(kNewYork, kLosAngeles), 3936, 3936 * 0.005);
  EXPECT_NEAR(Km(kSydney, kMelbourne), 714, 714 * 0.005);
  EXPECT_NEAR(Km(kLondon, kTokyo), 9559, 9559 * 0.005);
}

TEST(HaversineTest, SymmetricZeroAndAntipodal) {
  EXPECT_DOUBLE_EQ(Km(kParis, kLondon), Km(kLondon, kParis));
  EXPECT_DOUBLE_EQ(Km(kParis, kParis), 0);
  // Antipodes: half the circumference (to a metre: the formula is ill-
  // conditioned there, and no two sites are antipodal).
  EXPECT_NEAR(HaversineKm(10, 20, -10, -160), M_PI * kEarthRadiusKm, 1e-3);
  // Across the antimeridian: 1 degree of longitude at the equator.
  EXPECT_NEAR(HaversineKm(0, 179.5, 0, -179.5), M_PI * kEarthRadiusKm / 180,
              1e-6);
}

TEST(ChordTest, AgreesWithHaversine) {
  const City cities[] = {kLondon, kParis,     kNewYork, kLosAngeles,
                         kSydney, kMelbourne, kTokyo};
  for (City a : cities) {
    for (City b : cities) {
      const double chord2 =
          ChordSquared(ToUnitVector(a.lat, a.lon), ToUnitVector(b.lat, b.lon));
      // Float unit vectors: within a few metres.
      EXPECT_NEAR(ChordSquaredToKm(chord2), Km(a, b), 0.01);
      EXPECT_NEAR(KmToChordSquared(Km(a, b)), chord2, 1e-6);
    }
  }
  EXPECT_EQ(KmToChordSquared(0), 0);
  EXPECT_EQ(KmToChordSquared(1e9), 4);
}

TEST(ChordTest, OrderIsPreserved) {
  const UnitVector london = ToUnitVector(kLondon.lat, kLondon.lon);
  EXPECT_LT(ChordSquared(london, ToUnitVector(kParis.lat, kParis.lon)),
            ChordSquared(london, ToUnitVector(kNewYork.lat, kNewYork.lon)));
}

}  // namespace
}  // namespace trialmatch::match
