# Install rules and packages.
#
# `cmake --install build [--prefix P]` puts
#   bin/lowbit                               the program
#   share/lowbit/assets/                     the bundled model and data (found by the program)
#   include/lowbit/<module>/*.h              the library's headers (src/ less cli/)
#   lib/liblowbit_<module>.a                 one static library per module of src/layers.txt
#   lib/cmake/lowbit/                        find_package(lowbit) -> lowbit::lowbit
#   lib/pkgconfig/lowbit.pc                  pkg-config --cflags --libs lowbit
# (lib/ is CMAKE_INSTALL_LIBDIR). Components: `runtime` (program and assets) and `dev` (the rest).
# `cpack -G DEB` in the build folder makes the packages `lowbit` (runtime) and `lowbit-dev`.
include(CMakePackageConfigHelpers)

set(LOWBIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/lowbit)

install(TARGETS lowbit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
# The program looks for its assets at ../share/lowbit/assets from its own folder
# (pipeline/job_inputs.cpp), so these two destinations move together.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/assets/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lowbit/assets
        COMPONENT runtime)

# The library: every module, as lowbit::<module>, and lowbit::lowbit for all of them.
set_target_properties(lowbit_lib PROPERTIES EXPORT_NAME lowbit)
set_target_properties(lowbit_common PROPERTIES EXPORT_NAME common)
foreach(t ${LOWBIT_LIB_MODULES})
  string(REPLACE "lowbit_" "" name ${t})
  set_target_properties(${t} PROPERTIES EXPORT_NAME ${name})
endforeach()
install(TARGETS lowbit_common ${LOWBIT_LIB_MODULES} lowbit_lib EXPORT lowbitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lowbit
        COMPONENT dev FILES_MATCHING PATTERN "*.h" PATTERN "cli" EXCLUDE)
install(EXPORT lowbitTargets NAMESPACE lowbit:: DESTINATION ${LOWBIT_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lowbitConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/lowbitConfig.cmake
                              INSTALL_DESTINATION ${LOWBIT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lowbitConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lowbitConfig.cmake ${PROJECT_BINARY_DIR}/lowbitConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/lowbitDependencies.cmake
        DESTINATION ${LOWBIT_CMAKE_DIR} COMPONENT dev)

# pkg-config: the static libraries top layer first (each links only to the ones after it), then
# what they link with. The prefix is found from the .pc file's own place, so the installed tree
# can be moved (and `cmake --install --prefix P` works for any P).
set(LOWBIT_PC_LIBS)
foreach(t ${LOWBIT_LIB_MODULES})
  get_target_property(type ${t} TYPE)
  if(type STREQUAL "STATIC_LIBRARY")
    list(PREPEND LOWBIT_PC_LIBS "-l${t}")
  endif()
endforeach()
foreach(lib ${LOWBIT_ONNX_PROTO_LIB} ${LOWBIT_DNNL_LIB} ${_lowbit_opencv_libs})
  get_filename_component(name ${lib} NAME_WE)
  string(REGEX REPLACE "^lib" "-l" flag ${name})
  list(APPEND LOWBIT_PC_LIBS ${flag})
endforeach()
list(JOIN LOWBIT_PC_LIBS " " LOWBIT_PC_LIBS)
file(RELATIVE_PATH LOWBIT_PC_PREFIX_FROM_PCFILEDIR
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/lowbit.pc.in ${PROJECT_BINARY_DIR}/lowbit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/lowbit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)

# Debian packages (cpack -G DEB): `lowbit` has the program and assets (its library dependencies
# found by dpkg-shlibdeps), `lowbit-dev` the library, headers, CMake and pkg-config files and
# depends on `lowbit` and the -dev packages the library needs.
set(CPACK_PACKAGE_NAME lowbit)
set(CPACK_PACKAGE_VENDOR "lowbit")
set(CPACK_PACKAGE_CONTACT "lowbit maintainers <lowbit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Low-bit post-training quantization of YOLO detectors in ONNX")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME lowbit)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "lowbit command-line program and its bundled model and data")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME lowbit-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libdnnl-dev, libopencv-core-dev, libopencv-imgproc-dev, libopencv-imgcodecs-dev, \
libonnx-dev, libprotobuf-dev, libfmt-dev, nlohmann-json3-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "lowbit static libraries, headers, CMake package and pkg-config file")
include(CPack)
